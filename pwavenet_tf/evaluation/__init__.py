"""Resynthesis quality against real audio, behind `pwavenet evaluate`: the engine that runs
it (`evaluator`), objective metrics and the Griffin-Lim reference (`metrics`), optional
DNSMOS scores (`dnsmos`) and speech-recognizer word error rates (`asr`), and the report
files (`report`)."""
