"""The OpenCGA emulator's state: signed tokens, the catalog (projects, studies, files,
samples, individuals) and variant index jobs that move on the clock.

Tokens are JWT-shaped (`header.payload.signature`, base64url, HMAC-SHA256 with a secret of
this emulator) with the claims `sub` (user), `aud` (organization), `iss` "OpenCGA", `iat`,
`exp` and `typ` ("access" or "refresh"); a client may read `exp` to refresh in time. A token
is valid until it expires: nothing is revoked, so every issued, unexpired access token keeps
working (pyopencga's sub-clients each keep their own copy), and each login or refresh
answers a new pair (refresh tokens rotate).

Index jobs go PENDING -> QUEUED -> RUNNING -> DONE over `job_seconds` (time-scaled; shares
below); a VCF the loader cannot read, or a file already indexed (unless the body says
`forceReload` or `skipIndexedFiles`), ends RUNNING in ERROR instead, with the reason in
`internal.status.description` and the job's log; `jobs/{id}/kill` makes an unfinished job
ABORTED. The file's `internal.variant.index.status.id` is NONE, INDEXING while its job runs,
and READY once DONE has loaded its variants into the study (back to NONE if the job fails).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import opencga_variants as variants

VERSION = "5.0.0"
GIT_COMMIT = "0e8a6bb0c7e1b1f3d9a2b3c4d5e6f708192a3b4c"
ORGANIZATION = "gensvc"
PENDING_SHARE, QUEUED_SHARE, ERROR_SHARE = 0.1, 0.25, 0.5  # of job_seconds: when each state ends
INDEX_TOOL = "variant-index"
ACTIVE = ("PENDING", "QUEUED", "RUNNING")

CATALOG_EXCEPTION = "org.opencb.opencga.catalog.exceptions.CatalogException"
AUTHENTICATION_EXCEPTION = "org.opencb.opencga.catalog.exceptions.CatalogAuthenticationException"
AUTHORIZATION_EXCEPTION = "org.opencb.opencga.catalog.exceptions.CatalogAuthorizationException"
PARAMETER_EXCEPTION = "org.opencb.opencga.catalog.exceptions.CatalogParameterException"
VARIANT_QUERY_EXCEPTION = "org.opencb.opencga.storage.core.variant.adaptors.VariantQueryException"


class OpencgaError(Exception):
    """An error OpenCGA answers in its envelope: the HTTP status follows the exception class
    (authentication 401, authorisation 403, anything else 500), as OpenCGAWSServer does."""

    def __init__(self, message: str, exception: str = CATALOG_EXCEPTION, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.exception = exception
        if status is None:
            status = {AUTHENTICATION_EXCEPTION: 401, AUTHORIZATION_EXCEPTION: 403}.get(exception, 500)
        self.status = status


def opencga_date(moment: float | None = None) -> str:
    """OpenCGA's date strings: yyyyMMddHHmmss."""
    when = datetime.fromtimestamp(time.time() if moment is None else moment, timezone.utc)
    return when.strftime("%Y%m%d%H%M%S")


def _new_id(kind: str, body: dict) -> str:
    """The ``id`` a create body asks for: letters, digits, ``_`` and ``-`` only."""
    new_id = str(body.get("id") or "")
    if not new_id or not new_id.replace("_", "").replace("-", "").isalnum():
        raise OpencgaError(f"Invalid {kind} id '{new_id}'", PARAMETER_EXCEPTION)
    return new_id


def _ready_status(date: str) -> dict:
    return {"id": "READY", "name": "READY", "date": date, "description": ""}


def _catalog_entry(entry_id: str, fqn: str, body: dict, now: str) -> dict:
    """What a new project and a new study both carry."""
    return {"id": entry_id, "uuid": str(uuidlib.uuid4()), "name": body.get("name") or entry_id, "fqn": fqn,
            "creationDate": now, "modificationDate": now, "description": body.get("description", ""),
            "attributes": {}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and checks JWT-shaped tokens; stateless, as OpenCGA's JWT tokens are."""

    def __init__(self, access_seconds: float, refresh_seconds: float):
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds
        self._secret = secrets.token_bytes(32)

    def issue(self, user: str, kind: str, organization: str = ORGANIZATION) -> str:
        now = time.time()
        lifetime = self.access_seconds if kind == "access" else self.refresh_seconds
        # Whole seconds as OpenCGA writes them, unless a time scale makes lifetimes short.
        exp: float = math.floor(now + lifetime) if lifetime >= 60 else round(now + lifetime, 3)
        claims = {"sub": user, "aud": organization, "iss": "OpenCGA", "iat": int(now), "exp": exp,
                  "typ": kind, "jti": secrets.token_hex(8)}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def verify(self, token: str, kind: str = "access") -> dict:
        parts = token.split(".")
        if len(parts) != 3:
            raise OpencgaError(f"Invalid authentication token : {token}", AUTHENTICATION_EXCEPTION)
        head, body, signature = parts
        expected = hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64(signature), expected)
            claims = json.loads(_unb64(body)) if valid else None
        except (ValueError, UnicodeDecodeError):
            valid, claims = False, None
        if not valid or not isinstance(claims, dict) or claims.get("typ") != kind:
            raise OpencgaError(f"Invalid authentication token : {token}", AUTHENTICATION_EXCEPTION)
        if time.time() >= float(claims["exp"]):
            raise OpencgaError(f"Authentication token is expired : {token}", AUTHENTICATION_EXCEPTION)
        return claims


@dataclass
class IndexJob:
    """A variant-index job; its status follows the clock from `submitted`."""
    record: dict
    file_ids: list[str]
    study_fqn: str
    submitted: float
    duration: float
    error: str | None = None  # a failed load: the reason
    loaded: bool = False
    killed_at: float | None = None
    log: list[str] = field(default_factory=list)

    def state_at(self, now: float) -> tuple[str, float]:
        """(status id, the moment it was entered)."""
        elapsed = now - self.submitted
        marks = [("PENDING", 0.0), ("QUEUED", PENDING_SHARE), ("RUNNING", QUEUED_SHARE)]
        marks.append(("ERROR", ERROR_SHARE) if self.error else ("DONE", 1.0))
        state, since = marks[0][0], self.submitted
        for name, share in marks:
            at = self.submitted + share * self.duration
            if self.killed_at is not None and at > self.killed_at:
                return "ABORTED", self.killed_at
            if elapsed >= share * self.duration:
                state, since = name, at
        if self.killed_at is not None and state in ACTIVE:
            return "ABORTED", self.killed_at
        return state, since


class OpencgaState:
    """Everything the emulator knows; one lock guards it."""

    def __init__(self, users: dict[str, str], issuer: TokenIssuer, job_seconds: float):
        self.users = users
        self.issuer = issuer
        self.job_seconds = job_seconds
        self.lock = threading.RLock()
        self.projects: dict[str, dict] = {}  # fqn -> Project
        self.studies: dict[str, dict] = {}  # fqn -> Study
        self.files: dict[str, dict[str, dict]] = {}  # study fqn -> file id -> File
        self.contents: dict[tuple[str, str], bytes] = {}  # (study, file id) -> bytes
        self.samples: dict[str, dict[str, dict]] = {}
        self.individuals: dict[str, dict[str, dict]] = {}
        self.jobs: dict[str, dict[str, IndexJob]] = {}
        self.variants: dict[str, variants.StudyVariants] = {}
        owner = next(iter(users), "owner")
        self.create_project(owner, {"id": "demo", "name": "Demo project",
                                    "organism": {"scientificName": "Homo sapiens", "assembly": "GRCh38"}})
        self.create_study(owner, f"{ORGANIZATION}@demo", {"id": "demo", "name": "Demo study"})

    # --- login -------------------------------------------------------------------------
    def login(self, body: dict) -> dict:
        if not isinstance(body, dict):
            raise OpencgaError("Missing login body: send {user, password} or {refreshToken}",
                               PARAMETER_EXCEPTION)
        organization = body.get("organization") or ORGANIZATION
        if organization != ORGANIZATION:
            raise OpencgaError(f"Organization '{organization}' not found.", AUTHENTICATION_EXCEPTION)
        has_password = body.get("user") is not None or body.get("password") is not None
        if body.get("refreshToken") is not None:
            if has_password:
                raise OpencgaError("Only one of 'user'/'password' or 'refreshToken' can be given.",
                                   PARAMETER_EXCEPTION)
            user = self.issuer.verify(str(body["refreshToken"]), "refresh")["sub"]
        elif has_password:
            user = str(body.get("user") or "")
            if user not in self.users or self.users[user] != body.get("password"):
                raise OpencgaError("Incorrect user or password.", AUTHENTICATION_EXCEPTION)
        else:
            raise OpencgaError("Missing 'user' and 'password', or 'refreshToken'.", PARAMETER_EXCEPTION)
        return {"token": self.issuer.issue(user, "access", organization),
                "refreshToken": self.issuer.issue(user, "refresh", organization)}

    # --- catalog -----------------------------------------------------------------------
    def create_project(self, user: str, body: dict) -> dict:
        project_id = _new_id("project", body)
        fqn = f"{ORGANIZATION}@{project_id}"
        with self.lock:
            if fqn in self.projects:
                raise OpencgaError(f"Project '{project_id}' already exists.")
            now = opencga_date()
            organism = body.get("organism") or {"scientificName": "Homo sapiens", "assembly": "GRCh38"}
            self.projects[fqn] = {
                **_catalog_entry(project_id, fqn, body, now), "organism": organism,
                "currentRelease": 1, "studies": [],
                "internal": {"status": _ready_status(now), "datastores": {},
                             "cellbase": {"url": "", "version": "v5.8"}},
            }
            return self.projects[fqn]

    def create_study(self, user: str, project_ref: str | None, body: dict) -> dict:
        project = self.find_project(project_ref)
        study_id = _new_id("study", body)
        fqn = f"{project['fqn']}:{study_id}"
        with self.lock:
            if fqn in self.studies:
                raise OpencgaError(f"Study '{study_id}' already exists in project '{project['id']}'.")
            now = opencga_date()
            study = {**_catalog_entry(study_id, fqn, body, now), "alias": study_id, "release": 1,
                     "internal": {"status": _ready_status(now)}}
            self.studies[fqn] = study
            project["studies"].append({"id": study_id, "fqn": fqn, "uuid": study["uuid"]})
            for table in (self.files, self.samples, self.individuals, self.jobs):
                table[fqn] = {}
            self.variants[fqn] = variants.StudyVariants()
            self.files[fqn][""] = self._folder(fqn, "")
            return study

    def find_project(self, ref: str | None) -> dict:
        with self.lock:
            if not ref:
                if len(self.projects) == 1:
                    return next(iter(self.projects.values()))
                raise OpencgaError("Missing mandatory parameter 'project'", PARAMETER_EXCEPTION)
            name = ref.split("@", 1)[-1]
            fqn = f"{ORGANIZATION}@{name}"
            if ("@" in ref and ref.split("@", 1)[0] != ORGANIZATION) or fqn not in self.projects:
                raise OpencgaError(f"Project '{ref}' not found")
            return self.projects[fqn]

    def find_study(self, ref: str | None) -> dict:
        """A study by fqn (`org@project:study`), `project:study` or its id alone."""
        with self.lock:
            if not ref:
                if len(self.studies) == 1:
                    return next(iter(self.studies.values()))
                raise OpencgaError("Missing mandatory parameter 'study'", PARAMETER_EXCEPTION)
            if "@" in ref:
                found = [s for fqn, s in self.studies.items() if fqn == ref]
            elif ":" in ref:
                found = [s for fqn, s in self.studies.items() if fqn.split("@", 1)[1] == ref]
            else:
                found = [s for s in self.studies.values() if s["id"] == ref or s["uuid"] == ref]
            if len(found) != 1:
                raise OpencgaError(f"Study '{ref}' not found" if not found
                                   else f"More than one study found given '{ref}'")
            return found[0]

    def _folder(self, study: str, path: str) -> dict:
        now = opencga_date()
        return {"id": path.replace("/", ":"), "uuid": str(uuidlib.uuid4()),
                "name": path.rstrip("/").rsplit("/", 1)[-1] if path else ".", "path": path,
                "uri": f"file:///opencga/sessions/{study.replace('@', '/').replace(':', '/')}/{path}",
                "type": "DIRECTORY", "format": "UNKNOWN", "bioformat": "NONE", "size": 0,
                "creationDate": now, "modificationDate": now, "sampleIds": [], "tags": [],
                "internal": {"status": _ready_status(now)},
                "attributes": {}}

    def upload(self, study_ref: str | None, name: str, folder: str, parents: bool, data: bytes,
               fmt: str | None, bioformat: str | None, description: str = "",
               checksum: str | None = None) -> dict:
        study = self.find_study(study_ref)
        fqn = study["fqn"]
        if folder in (".", "./", "/"):
            folder = ""
        if folder.startswith("/"):
            raise OpencgaError(f"relativeFilePath '{folder}' must not start with '/'", PARAMETER_EXCEPTION)
        if folder and not folder.endswith("/"):
            raise OpencgaError(f"relativeFilePath '{folder}' must end with '/': it names a folder",
                               PARAMETER_EXCEPTION)
        if not name or "/" in name or name in (".", ".."):
            raise OpencgaError(f"Invalid file name '{name}'", PARAMETER_EXCEPTION)
        path = folder + name
        file_id = path.replace("/", ":")
        with self.lock:
            files = self.files[fqn]
            if file_id in files:
                raise OpencgaError(f"File '{path}' already exists in study '{fqn}'")
            missing = []
            parts = folder.rstrip("/").split("/") if folder else []
            for depth in range(1, len(parts) + 1):
                sub = "/".join(parts[:depth]) + "/"
                if sub.replace("/", ":") not in files:
                    missing.append(sub)
            if missing and not parents:
                raise OpencgaError(f"Parent folder '{missing[0]}' not found; pass parents=true to create it")
            for sub in missing:
                files[sub.replace("/", ":")] = self._folder(fqn, sub)
            lower = name.lower()
            is_vcf = lower.endswith((".vcf", ".vcf.gz", ".vcf.bgz"))
            fmt = (fmt or ("VCF" if is_vcf else "UNKNOWN")).upper()
            bioformat = (bioformat or ("VARIANT" if is_vcf else "NONE")).upper()
            sample_ids: list[str] = []
            if fmt == "VCF":
                try:
                    sample_ids = variants.vcf_samples(variants.decode_vcf(data))
                except variants.VcfError:
                    sample_ids = []  # read again, and failed, by the index job
            now = opencga_date()
            record = self._folder(fqn, path)
            record.update({
                "id": file_id, "name": name, "type": "FILE", "format": fmt, "bioformat": bioformat,
                "size": len(data), "description": description, "sampleIds": sample_ids,
                "checksum": checksum or hashlib.md5(data).hexdigest(),
                "internal": {"status": _ready_status(now),
                             "variant": {"index": {"status": {"id": "NONE", "name": "NONE", "date": now,
                                                              "description": ""}}}},
            })
            files[file_id] = record
            self.contents[(fqn, file_id)] = data
            for sample in sample_ids:
                self.samples[fqn].setdefault(sample, self._sample(sample, file_id))
                if file_id not in self.samples[fqn][sample]["fileIds"]:
                    self.samples[fqn][sample]["fileIds"].append(file_id)
            return record

    @staticmethod
    def _sample(sample_id: str, file_id: str) -> dict:
        now = opencga_date()
        return {"id": sample_id, "uuid": str(uuidlib.uuid4()), "individualId": "", "fileIds": [file_id],
                "somatic": False, "creationDate": now, "modificationDate": now, "release": 1,
                "phenotypes": [], "annotationSets": [],
                "internal": {"status": _ready_status(now)},
                "attributes": {}}

    def create_individual(self, study_ref: str | None, body: dict) -> dict:
        study = self.find_study(study_ref)
        individual_id = str(body.get("id") or "")
        if not individual_id:
            raise OpencgaError("Missing individual id", PARAMETER_EXCEPTION)
        with self.lock:
            table = self.individuals[study["fqn"]]
            if individual_id in table:
                raise OpencgaError(f"Individual '{individual_id}' already exists.")
            now = opencga_date()
            sex = body.get("sex") or {"id": "UNKNOWN"}
            table[individual_id] = {
                "id": individual_id, "uuid": str(uuidlib.uuid4()), "name": body.get("name", individual_id),
                "sex": sex if isinstance(sex, dict) else {"id": str(sex)},
                "karyotypicSex": body.get("karyotypicSex", "UNKNOWN"), "phenotypes": body.get("phenotypes", []),
                "samples": [], "creationDate": now, "modificationDate": now, "release": 1,
                "internal": {"status": _ready_status(now)},
                "attributes": {}}
            for sample_id in body.get("samples", []) or []:
                sample_id = sample_id.get("id") if isinstance(sample_id, dict) else sample_id
                sample = self.samples[study["fqn"]].get(sample_id)
                if sample is None:
                    raise OpencgaError(f"Sample '{sample_id}' not found")
                sample["individualId"] = individual_id
                table[individual_id]["samples"].append({"id": sample_id, "uuid": sample["uuid"]})
            return table[individual_id]

    def find_file(self, study_fqn: str, ref: str) -> dict:
        with self.lock:
            files = self.files[study_fqn]
            key = ref.replace("/", ":")
            if key in files:
                return files[key]
            named = [f for f in files.values() if f["type"] == "FILE" and (f["name"] == ref or f["uuid"] == ref)]
            if len(named) == 1:
                return named[0]
            raise OpencgaError(f"File '{ref}' not found" if not named
                               else f"More than one file found given '{ref}': use its path")

    # --- jobs --------------------------------------------------------------------------
    def submit_index(self, user: str, study_ref: str | None, body: dict, job_id: str | None,
                     description: str, tags: list[str], fail_with: str | None = None) -> dict:
        study = self.find_study(study_ref)
        fqn = study["fqn"]
        file_refs = [ref for ref in str((body or {}).get("file") or "").split(",") if ref]
        if not file_refs:
            raise OpencgaError("Missing mandatory parameter 'file'", PARAMETER_EXCEPTION)
        with self.lock:
            files = [self.find_file(fqn, ref) for ref in file_refs]
            for record in files:
                if record["type"] != "FILE" or record["format"] != "VCF":
                    raise OpencgaError(f"File '{record['path']}' is not a VCF file (format {record['format']})")
            job_id = job_id or f"{INDEX_TOOL}.{opencga_date()}.{secrets.token_urlsafe(4)[:6]}"
            if job_id in self.jobs[fqn]:
                raise OpencgaError(f"Job '{job_id}' already exists.")
            error = fail_with
            again = bool((body or {}).get("forceReload")) or bool((body or {}).get("skipIndexedFiles"))
            for record in files:
                indexed = record["internal"]["variant"]["index"]["status"]["id"] == "READY"
                if error is None and indexed and not again:
                    error = (f"File '{record['path']}' is already indexed: pass forceReload or "
                             "skipIndexedFiles to index it again")
                if error is None:
                    try:
                        variants.read_vcf(variants.decode_vcf(self.contents[(fqn, record["id"])]))
                    except variants.VcfError as problem:
                        error = f"Error loading file '{record['path']}': {problem}"
            now = time.time()
            out_dir = f"JOBS/{user}/{opencga_date(now)[:8]}/{job_id}/"
            record = {
                "id": job_id, "uuid": str(uuidlib.uuid4()), "description": description or "",
                "type": "NATIVE",
                "tool": {"id": INDEX_TOOL, "description": "Index variant files into the variant storage",
                         "scope": "STUDY", "type": "OPERATION", "resource": "VARIANT",
                         "minimumRequirements": {"cpu": "2", "memory": "8GB"}},
                "study": {"id": fqn, "others": []}, "userId": user,
                "commandLine": f"opencga-internal.sh variant index --file {','.join(f['id'] for f in files)}",
                "params": dict(body or {}, study=fqn), "creationDate": opencga_date(now),
                "modificationDate": opencga_date(now), "priority": "MEDIUM",
                "outDir": {"id": out_dir.replace("/", ":"), "path": out_dir},
                "input": [{"id": f["id"], "path": f["path"], "name": f["name"]} for f in files],
                "output": [], "tags": list(tags), "dependsOn": [], "parentId": "",
                "scheduledStartTime": "", "dryRun": False, "execution": None, "visited": False,
                "release": 1, "attributes": {},
                "stdout": {"id": f"{out_dir}{job_id}.log".replace("/", ":"), "path": f"{out_dir}{job_id}.log"},
                "stderr": {"id": f"{out_dir}{job_id}.err".replace("/", ":"), "path": f"{out_dir}{job_id}.err"},
            }
            job = IndexJob(record, [f["id"] for f in files], fqn, now, self.job_seconds, error)
            self.jobs[fqn][job_id] = job
            return self.job_json(job)

    def _advance(self, job: IndexJob, now: float) -> None:
        """Act on what the clock says: load the variants at DONE, write the log."""
        state, since = job.state_at(now)
        if state == "RUNNING" and not job.loaded:
            for file_id in job.file_ids:
                index = self.files[job.study_fqn][file_id]["internal"]["variant"]["index"]
                if index["status"]["id"] == "NONE":
                    index["status"] = {"id": "INDEXING", "name": "INDEXING", "date": opencga_date(since),
                                       "description": f"Being indexed by job {job.record['id']}"}
        if state in ("ERROR", "ABORTED") and not job.loaded:
            for file_id in job.file_ids:
                index = self.files[job.study_fqn][file_id]["internal"]["variant"]["index"]
                if index["status"]["id"] == "INDEXING":
                    index["status"] = {"id": "NONE", "name": "NONE", "date": opencga_date(since),
                                       "description": f"Job {job.record['id']} ended in {state}"}
            job.loaded = True  # nothing more will happen to it
        if state == "DONE" and not job.loaded:
            for file_id in job.file_ids:
                data = self.contents[(job.study_fqn, file_id)]
                samples, records = variants.read_vcf(variants.decode_vcf(data))
                self.variants[job.study_fqn].load(variants.split_records(file_id, samples, records))
                index = self.files[job.study_fqn][file_id]["internal"]["variant"]["index"]
                index["status"] = {"id": "READY", "name": "READY", "date": opencga_date(since),
                                   "description": f"Indexed by job {job.record['id']}"}
            job.loaded = True
        lines = [f"{opencga_date(job.submitted)} [INFO] Job {job.record['id']} registered (PENDING)"]
        if state != "PENDING":
            lines.append(f"{opencga_date(job.submitted)} [INFO] Job queued")
        if state in ("RUNNING", "DONE", "ERROR"):
            lines += [f"{opencga_date(job.submitted)} [INFO] Running {INDEX_TOOL}",
                      *(f"[INFO] Transforming file '{f}'" for f in job.file_ids)]
        if state == "DONE":
            lines += [*(f"[INFO] Loading file '{f}' into the variant storage" for f in job.file_ids),
                      f"[INFO] Job {job.record['id']} finished"]
        if state == "ERROR":
            lines += [f"[ERROR] {job.error}", f"[ERROR] Job {job.record['id']} failed"]
        if state == "ABORTED":
            lines += [f"[ERROR] Job {job.record['id']} killed on request (ABORTED)"]
        job.log = lines

    def job_json(self, job: IndexJob) -> dict:
        with self.lock:
            now = time.time()
            self._advance(job, now)
            state, since = job.state_at(now)
            description = {"PENDING": "Job created", "QUEUED": "Job queued", "RUNNING": "Job running",
                           "DONE": "", "ERROR": job.error or "", "ABORTED": "Job killed by the user"}[state]
            record = dict(job.record)
            record["internal"] = {
                "status": {"id": state, "name": state, "date": opencga_date(since),
                           "description": description, "version": VERSION, "commit": GIT_COMMIT},
                "webhook": {"callbackUrl": None, "status": {}}, "events": [], "killJobRequested": False}
            record["internal"]["killJobRequested"] = job.killed_at is not None
            if state in ("DONE", "ERROR", "ABORTED"):
                record["execution"] = {"id": job.record["id"], "start": opencga_date(job.submitted),
                                       "end": opencga_date(since), "status": {"name": state}}
            return record

    def find_job(self, study_ref: str | None, job_id: str) -> IndexJob:
        with self.lock:
            if study_ref:
                tables = [self.jobs[self.find_study(study_ref)["fqn"]]]
            else:
                tables = list(self.jobs.values())
            for table in tables:
                if job_id in table:
                    return table[job_id]
                for job in table.values():
                    if job.record["uuid"] == job_id:
                        return job
            raise OpencgaError(f"Job '{job_id}' not found")

    def kill(self, job: IndexJob) -> dict:
        with self.lock:
            state, _ = job.state_at(time.time())
            if state not in ACTIVE:
                raise OpencgaError(f"Cannot kill job '{job.record['id']}': its status is already {state}")
            job.killed_at = time.time()
            return self.job_json(job)

    def job_log(self, job: IndexJob, stream: str) -> list[str]:
        with self.lock:
            self._advance(job, time.time())
            if stream == "stderr":
                return [line for line in job.log if "[ERROR]" in line]
            return list(job.log)

    def study_jobs(self, fqn: str) -> list[IndexJob]:
        with self.lock:
            return list(self.jobs[fqn].values())

    def advance_all(self, fqn: str) -> None:
        """Before a variant query: finish any job whose time has come."""
        with self.lock:
            now = time.time()
            for job in self.jobs[fqn].values():
                self._advance(job, now)


__all__ = ["OpencgaError", "OpencgaState", "TokenIssuer", "VERSION", "opencga_date"]
