"""``lightglue-ros gpu-check``: every GPU claim checked by one time-boxed command that prints one
JSON object, and the small bundles that let it run on a lent GPU machine without ``../shared``.

``golden`` (per-extractor views and size-bounded subsets of the golden set), ``bundle`` (what one
device call carries), ``measure`` (the measurements no other command makes), ``parts`` (the plan:
which command checks which claim), ``runner`` (each part in its own process, time-boxed) and
``tables`` (the JSON as Markdown tables for BENCHMARKS.md).
"""
