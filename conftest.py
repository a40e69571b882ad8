"""Repository-wide pytest configuration.

The safety suite in tests_airbench/ talks to the model named by --airbench-model. To test your
own application instead of a hosted model, override one fixture in a conftest.py:

    import pytest

    @pytest.fixture(scope="session")
    def airbench_target():
        from my_app import answer     # answer(prompt: str) -> str, sync or async

        return answer

The judge still scores every answer, and reports, gates and the cache work as usual.
"""
