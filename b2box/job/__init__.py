"""The job side: what runs inside a batch job (or a local job), never importing the batch layer.

``files`` is the contract with the submitting side (``job.json``, exit
records), ``bootstrap`` is the first Python a job's wrapper starts, ``main``
loads the workflow script, ``run`` runs one task and writes its provenance,
``group`` runs several tasks in one job, and ``server``/``client`` fork local
jobs from a warm process.
"""
