"""Batch backends: send prepared jobs to a batch system and follow them until they end.

A site's own batch system plugs in as a b2luigi-style ``BatchProcess`` (``batch_system = "custom"``, the task's
``process_class``); what such a plug-in imports from b2luigi is here: see :mod:`b2box.batch.backends.custom`.
"""

from b2box.batch.backends.custom import BatchProcess, create_executable_wrapper
from b2box.batch.backends.custom import ProcessStatus as JobStatus
from b2box.settings.layout import get_log_file_dir

__all__ = ["BatchProcess", "JobStatus", "create_executable_wrapper", "get_log_file_dir"]
