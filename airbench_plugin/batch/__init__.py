"""Batch-API runs (`--airbench-batch`): a run's calls sent as providers' batches at half the price.

`lines` builds and reads the JSONL files (custom ids, limits, output and error lines), `api`
talks to a provider's Files and Batches endpoints through its own SDK, `journal` records every
file and batch in the cache directory the moment it exists, and `driver` submits, polls, resumes
and collects a step (the answers, then the judgements). The engine decides what a step holds and
waits for it; nothing here knows a judge template or a score.
"""
