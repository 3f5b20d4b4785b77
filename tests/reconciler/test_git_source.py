"""GitSource against real repositories in tmp dirs: exact commits, subdirs, tags,
force-pushes, deleted branches and fetch failures that keep the last good revision."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from reconciler_testkit import WorkRepo, document, git_test_env, spec_yaml

from pycontainers.reconciler.desired import load_desired
from pycontainers.reconciler.errors import GitSourceError
from pycontainers.reconciler.gitsource import GitSource, GitSourceConfig, cache_dir_for


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return git_test_env(home)


@pytest.fixture
def upstream(tmp_path: Path, env: dict[str, str]) -> WorkRepo:
    return WorkRepo.init(tmp_path / "upstream", env)


def source(tmp_path: Path, env: dict[str, str], url: Path | str, **config: str) -> GitSource:
    return GitSource(
        GitSourceConfig(str(url), **config), cache_dir_for(tmp_path / "storage", str(url)), env=env
    )


def test_snapshot_is_exactly_the_fetched_commit(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    first = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    git = source(tmp_path, env, upstream.path)
    result = asyncio.run(git.sync())
    assert result.fetch_error is None
    assert result.snapshot.revision == f"git:{first}"
    assert set(load_desired(result.snapshot).containers) == {"web"}

    # A later upstream commit is invisible until the next fetch.
    second = upstream.commit({"db.yaml": spec_yaml(document("db"))})
    assert asyncio.run(git.snapshot()).revision == f"git:{first}"
    assert asyncio.run(git.sync()).snapshot.revision == f"git:{second}"
    assert git.git_dir.is_relative_to(tmp_path / "storage" / "sources" / "git")


def test_subdir_hidden_symlink_and_huge_files(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    (upstream.path / "deploy").mkdir()
    (upstream.path / "deploy" / "link.yaml").symlink_to("web.yaml")
    upstream.commit(
        {
            "README.md": b"docs",
            "other/ignored.yaml": spec_yaml(document("elsewhere")),
            "deploy/web.yaml": spec_yaml(document("web")),
            "deploy/team/db.yml": spec_yaml(document("db")),
            "deploy/.hidden.yaml": b"x",
            "deploy/.github/ci.yaml": b"x",
            "deploy/huge.yaml": b"#" * 2_000_000,
        }
    )
    snapshot = asyncio.run(source(tmp_path, env, upstream.path, subdir="deploy").sync()).snapshot
    assert sorted(snapshot.files) == ["team/db.yml", "web.yaml"]
    assert snapshot.file_errors == {
        "huge.yaml": "file too large (2000000 bytes, limit 1048576)",
        "link.yaml": "symlink in the repository: not followed",
    }


def test_follows_a_tag(tmp_path: Path, env: dict[str, str], upstream: WorkRepo) -> None:
    tagged = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    upstream.git("tag", "-a", "v1", "-m", "release 1")
    upstream.commit({"web.yaml": spec_yaml(document("web", env={"A": "2"}))})
    snapshot = asyncio.run(source(tmp_path, env, upstream.path, ref="v1").sync()).snapshot
    assert snapshot.revision == f"git:{tagged}"


def test_force_push_moves_to_the_new_history(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    base = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    upstream.commit({"web.yaml": spec_yaml(document("web", env={"A": "1"}))})
    git = source(tmp_path, env, upstream.path)
    asyncio.run(git.sync())
    upstream.git("reset", "--quiet", "--hard", base)
    rewritten = upstream.commit({"web.yaml": spec_yaml(document("web", env={"A": "rewritten"}))})
    result = asyncio.run(git.sync())
    assert result.fetch_error is None
    assert result.snapshot.revision == f"git:{rewritten}"
    assert b"rewritten" in result.snapshot.files["web.yaml"]


def test_fetch_failure_keeps_the_last_good_revision_and_reports_it(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    good = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    git = source(tmp_path, env, upstream.path)
    asyncio.run(git.sync())
    shutil.rmtree(upstream.path)
    result = asyncio.run(git.sync())
    assert result.snapshot.revision == f"git:{good}"
    assert result.fetch_error is not None
    assert "git fetch failed" in str(result.fetch_error)
    assert str(upstream.path) in str(result.fetch_error)


def test_deleted_branch_keeps_the_last_good_revision(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    upstream.commit({"web.yaml": b"seed"})
    upstream.git("checkout", "--quiet", "-b", "deploy")
    good = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    git = source(tmp_path, env, upstream.path, ref="deploy")
    asyncio.run(git.sync())
    upstream.git("checkout", "--quiet", "main")
    upstream.git("branch", "--quiet", "-D", "deploy")
    result = asyncio.run(git.sync())
    assert result.snapshot.revision == f"git:{good}"
    assert str(result.fetch_error) == (
        f"{upstream.path} has no branch or tag 'deploy'; keeping {good[:12]}"
    )


def test_never_fetched_and_unreachable_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    git = source(tmp_path, env, tmp_path / "nowhere")
    with pytest.raises(GitSourceError, match="git fetch failed"):
        asyncio.run(git.sync())
    with pytest.raises(GitSourceError, match="nothing fetched yet"):
        asyncio.run(git.snapshot())


def test_unknown_branch_on_first_fetch(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    upstream.commit({"web.yaml": spec_yaml(document("web"))})
    with pytest.raises(GitSourceError, match=r"has no branch or tag 'nope'$"):
        asyncio.run(source(tmp_path, env, upstream.path, ref="nope").sync())


def test_a_callers_git_dir_does_not_redirect_the_source(
    tmp_path: Path, env: dict[str, str], upstream: WorkRepo
) -> None:
    """Inside a git hook GIT_DIR points at the hook's repository; the source ignores it."""
    commit = upstream.commit({"web.yaml": spec_yaml(document("web"))})
    hostile = {**env, "GIT_DIR": str(tmp_path / "elsewhere"), "GIT_WORK_TREE": "/"}
    git = GitSource(GitSourceConfig(str(upstream.path)), tmp_path / "cache", env=hostile)
    assert asyncio.run(git.sync()).snapshot.revision == f"git:{commit}"


def test_both_sources_satisfy_the_source_protocol(tmp_path: Path, env: dict[str, str]) -> None:
    from pycontainers.reconciler.dirsource import DirectorySource
    from pycontainers.reconciler.snapshot import Source

    sources: list[Source] = [DirectorySource(tmp_path), source(tmp_path, env, tmp_path / "x")]
    assert [s.describe().split()[0] for s in sources] == ["directory", "git"]


def test_diff_plans_from_a_git_repository(
    tmp_path: Path,
    env: dict[str, str],
    upstream: WorkRepo,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pycontainers.reconciler.cli import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    commit = upstream.commit({"deploy/web.yaml": spec_yaml(document("web"))})
    argv = ["--root", str(tmp_path / "storage"), "diff", "--git", str(upstream.path)]
    assert main([*argv, "--subdir", "deploy"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"plan for git:{commit}: 1 to create")
    # The remote goes away: the last good revision is planned, with a warning.
    shutil.rmtree(upstream.path)
    assert main([*argv, "--subdir", "deploy"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"plan for git:{commit}: 1 to create")
    assert err.startswith("pycontainers: warning: git fetch failed")
