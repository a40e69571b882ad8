"""The plugin's own tests (a package, so helpers import as `tests.helpers`, `tests.chat_server`)."""
