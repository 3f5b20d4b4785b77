"""Push to deploy with real git: the hook shows validation to the pusher, refuses invalid
specs and branch deletion, and leaves a sync request for the daemon."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from reconciler_testkit import WorkRepo, document, git_test_env, spec_yaml

from pycontainers.reconciler.cli import main
from pycontainers.reconciler.deployrepo import init_deploy_repo
from pycontainers.reconciler.errors import DeployRepoError
from pycontainers.reconciler.gitsource import GitSource, GitSourceConfig
from pycontainers.reconciler.trigger import (
    SyncRequest,
    read_sync_requests,
    sync_request_path,
    wait_sync_requests,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return git_test_env(home)


@pytest.fixture
def deploy(tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Path:
    """Created through the CLI, as an operator would."""
    path = tmp_path / "deploy.git"
    code = main(["--runroot", str(tmp_path / "run"), "deploy-repo", "init", str(path)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert f"deploy repository ready: {path}" in out
    return path


@pytest.fixture
def work(tmp_path: Path, env: dict[str, str], deploy: Path) -> WorkRepo:
    repo = WorkRepo.init(tmp_path / "work", env)
    repo.git("remote", "add", "host", str(deploy))
    return repo


def push(work: WorkRepo, *refspec: str) -> tuple[int, str]:
    result = work.git("push", "host", *(refspec or ("main",)), check=False)
    return result.returncode, result.stderr


def test_valid_push_is_accepted_and_requests_a_sync(
    tmp_path: Path, deploy: Path, work: WorkRepo, env: dict[str, str]
) -> None:
    commit = work.commit(
        {"web.yaml": spec_yaml(document("web")), "db.yaml": spec_yaml(document("db"))}
    )
    code, stderr = push(work)
    assert code == 0, stderr
    assert f"remote: pycontainers: {commit[:12]}: 2 valid container(s): db, web" in stderr
    request_file = sync_request_path(tmp_path / "run", str(deploy))
    assert (
        f"remote: pycontainers: {commit[:12]} deployed; sync requested ({request_file})" in stderr
    )
    assert read_sync_requests(tmp_path / "run") == [
        SyncRequest(str(deploy), "refs/heads/main", commit)
    ]
    # The daemon follows the deploy repository as an ordinary git source.
    source = GitSource(GitSourceConfig(str(deploy)), tmp_path / "cache", env=env)
    assert asyncio.run(source.sync()).snapshot.revision == f"git:{commit}"


def test_invalid_push_is_refused_with_located_errors(
    tmp_path: Path, deploy: Path, work: WorkRepo
) -> None:
    good = work.commit({"web.yaml": spec_yaml(document("web"))})
    assert push(work)[0] == 0
    bad = work.commit({"web.yaml": spec_yaml(document("web", imagee="x")), "empty.yaml": b""})
    code, stderr = push(work)
    assert code != 0
    assert "remote: pycontainers: empty.yaml: empty file" in stderr
    assert (
        "remote: pycontainers: web.yaml:6:3: spec.imagee: unknown field 'imagee' "
        "(did you mean 'image'?)"
    ) in stderr
    assert f"{bad[:12]}: 2 error(s) in 2 file(s); push rejected" in stderr
    assert "pre-receive hook declined" in stderr
    # The deploy branch (and the daemon's request) still name the good commit.
    head = WorkRepo(deploy, work.env).git("--git-dir", str(deploy), "rev-parse", "main")
    assert head.stdout.strip() == good
    assert read_sync_requests(tmp_path / "run")[0].commit == good


def test_allow_invalid_accepts_but_still_reports(
    tmp_path: Path, work: WorkRepo, deploy: Path
) -> None:
    init_deploy_repo(deploy, runroot=tmp_path / "run", reject_invalid=False)
    commit = work.commit({"web.yaml": b"apiVersion: ["})
    code, stderr = push(work)
    assert code == 0
    assert "web.yaml:2:1: yaml syntax error" in stderr
    assert "push accepted anyway (rejectInvalid=false)" in stderr
    assert read_sync_requests(tmp_path / "run")[0].commit == commit


def test_deleting_the_deploy_branch_is_refused(deploy: Path, work: WorkRepo) -> None:
    work.commit({"web.yaml": spec_yaml(document("web"))})
    assert push(work)[0] == 0
    code, stderr = push(work, ":main")
    assert code != 0
    assert "refusing to delete refs/heads/main" in stderr


def test_force_push_is_validated_and_accepted(tmp_path: Path, deploy: Path, work: WorkRepo) -> None:
    work.commit({"web.yaml": spec_yaml(document("web"))})
    work.commit({"web.yaml": spec_yaml(document("web", env={"A": "1"}))})
    assert push(work)[0] == 0
    work.git("reset", "--quiet", "--hard", "HEAD~1")
    rewritten = work.commit({"web.yaml": spec_yaml(document("web", env={"A": "2"}))})
    code, stderr = push(work, "--force", "main")
    assert code == 0, stderr
    assert read_sync_requests(tmp_path / "run")[0].commit == rewritten


def test_other_branches_are_not_validated_or_deployed(
    tmp_path: Path, deploy: Path, work: WorkRepo
) -> None:
    work.commit({"web.yaml": b"not: [valid"})
    code, stderr = push(work, "main:feature")
    assert code == 0, stderr
    assert "pycontainers:" not in stderr
    assert read_sync_requests(tmp_path / "run") == []


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(DeployRepoError, match="directory is not empty"):
        init_deploy_repo(tmp_path / "busy", runroot=tmp_path / "run")


def test_daemon_side_wakes_on_a_sync_request(tmp_path: Path, deploy: Path, work: WorkRepo) -> None:
    async def scenario() -> list[SyncRequest]:
        stop = asyncio.Event()
        seen: list[SyncRequest] = []

        async def listen() -> None:
            async for requests in wait_sync_requests(tmp_path / "run", stop):
                seen.extend(requests)
                stop.set()

        async def pusher() -> None:
            # Push until the listener hears one; a push before the watch is armed is
            # simply not seen (the daemon syncs at start anyway).
            for i in range(50):
                work.commit({"web.yaml": spec_yaml(document("web", env={"N": str(i)}))})
                assert (await asyncio.to_thread(push, work))[0] == 0
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                    return
                except TimeoutError:
                    continue

        async with asyncio.TaskGroup() as group:
            group.create_task(listen())
            group.create_task(pusher())
        return seen

    seen = asyncio.run(scenario())
    assert seen and json.loads(json.dumps(seen[0].__dict__))["repository"] == str(deploy)
