"""Calibrating a judge: how far a candidate judge's scores are from the official judge's on answers
the official judge already scored (`airbench calibrate`), and what a run judged by the candidate
says about it (`--airbench-judge-calibration`)."""
