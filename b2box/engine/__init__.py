"""The local engine: the task graph, the linear scheduler, running one task, and progress reports."""
