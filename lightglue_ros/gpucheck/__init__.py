"""``lightglue-ros gpu-check``: every GPU claim checked by one time-boxed command that prints one
JSON object, run by a user on their own CUDA machine.

``golden`` (per-extractor views of the golden set), ``measure`` (the measurements no other command
makes), ``parts`` (the plan: which command checks which claim), ``runner`` (each part in its own
process, time-boxed) and ``tables`` (the JSON as Markdown tables for BENCHMARKS.md).
"""
