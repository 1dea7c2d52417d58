"""BelleDIRAC's InformationCollector, faked from the stand-in's projects: the calls b2luigi's status script makes."""

from standin_state import gbasf2_standin

KEYS = (
    "Status",
    "MinorStatus",
    "ApplicationStatus",
    "Site",
    "SubmissionTime",
    "LastUpdateTime",
    "HeartBeatTime",
    "RescheduleCounter",
)


class InformationCollector:
    def getAllJobsInProjects(self, projects, date="1970-01-01", login=None, statuses=None):
        gbasf2_standin.count_call("dirac_status")  # benchmarks count status queries, whoever asks
        with gbasf2_standin.locked():
            if gbasf2_standin.take_fault("status_flake"):
                return {"OK": False, "Message": "Unknown ERROR: proxy has not Belle VOMS extensions"}
        found = {}
        for name in projects:
            project = gbasf2_standin.load_project(name)
            found[name] = [(name, job_id) for job_id in project["jobs"]] if project else []
        return {"OK": True, "Value": found}

    def getJobSummary(self, items):
        if not items:
            return {"OK": False, "Message": "No jobs selected"}
        summary = {}
        for name, job_id in items:
            project = gbasf2_standin.load_project(name) or {"jobs": {}}
            job = project["jobs"].get(job_id)
            if job:
                summary[job_id] = {key: job[key] for key in KEYS}
                summary[job_id].update(JobGroup=name, Owner=project.get("owner", ""))
        return {"OK": True, "Value": summary}
