"""The README's Python example runs as written (doc snippets are tests, as in nevergrad)."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows the Python API"
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    result, image = ns["result"], ns["image"]
    assert len(result.history) == 20 and result.best.potential == max(c.potential for c in result.history)
    assert abs(float(image.mean()) - float(result.best.image.mean())) < 2 / 255  # the winner, regenerated


def test_readme_commands_exist():
    from eacps.commands.cli import commands as cli_commands

    commands = set(cli_commands())
    for cmd in re.findall(r"^eacps (\w+)", README.read_text(), re.M):
        assert cmd in commands, f"README mentions `eacps {cmd}`, which does not exist"


def layout_rows() -> list[str]:
    """The rows of the README's ``## Layout`` table."""
    section = README.read_text().split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_readme_layout_names_real_paths():
    """Every path of the layout table exists; a bare ``name.py`` lies in the folder of the row's first path."""
    missing = []
    for row in layout_rows():
        first = re.findall(r"`([^`]+)`", row.split("|")[1])[0]
        base = ROOT / first if first.endswith("/") else (ROOT / first).parent
        for name in re.findall(r"`([^`\s]+)`", row):
            if "/" not in name and not name.endswith(".py"):
                continue
            places = [ROOT / name, base / name] if "/" in name else [base / name]  # from the root, or the row's
            if not any(p.exists() for p in places):
                missing.append(name)
    assert layout_rows() and not missing, f"README's layout names missing paths: {missing}"


def test_readme_lists_every_builtin_strategy():
    """The strategies row names every module of the built-in strategies package, and each registered built-in
    strategy lives in one of them."""
    import eacps.strategies
    from eacps import plugins

    folder = Path(eacps.strategies.__file__).parent
    row = next(r for r in layout_rows() if r.startswith(f"| `{folder.relative_to(ROOT).as_posix()}/`"))
    listed = set(re.findall(r"`(\w+\.py)`", row))
    assert listed == {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    builtin = {e.cls.__module__.rsplit(".", 1)[1] + ".py" for e in plugins.get_registry().entries["strategy"].values()
               if e.distribution == "eacps"}
    assert builtin == listed


# -- every shell command of the README and docs/*.md runs as written (issue 21) --------------------------------------
# Each command runs from a scratch directory laid out like a fresh clone (docs/, notebooks/, benchmarks/ and
# mkdocs.yml linked; examples/ copied), in the order the page gives them, with the interpreter's own bin/ first on
# PATH. What cannot run here is recognised and checked another way, and that list is explicit (`how` below):
#   * long commands run with small budgets (`SMALL`), and the copied digits task sets are cut to 12 tasks;
#   * a command naming a hub model (--model org/name) is a GPU/download one: it runs with --dry-run, which
#     validates it and lists the downloads without weights;
#   * `make` targets run as `make -n` (they set up .venv or run this suite), `pip install` as
#     `pip install --dry-run --no-deps --no-index` (the paths and extras resolve), generators of committed
#     files (`docs/gen_reference.py`) with --check, and a GPU benchmark on a model folder with --help;
#   * `eacps serve` starts, answers GET / and is stopped.
import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import pytest  # noqa: E402

ROOT = README.parent
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
TIMEOUT_S = 900


def shell_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: continuation lines joined, comments and blank lines dropped."""
    out = []
    for body in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(shlex.join(words))
    return out


def _set(words: list[str], option: str, value: str) -> list[str]:
    """``words`` with ``option value`` replacing the option's value, or appended."""
    if option in words:
        i = words.index(option)
        return [*words[:i + 1], value, *words[i + 2:]]
    return [*words, option, value]


SMALL = {  # subcommand or script -> options set to small values (the digits task sets are cut to 12 tasks)
    "eacps demo": {"--tasks": "2", "--budget": "4"},
    "eacps compare": {"--budgets": "4", "--repeats": "1", "--pool": "4"},
    "eacps landscape": {"--parents": "3", "--children": "1"},
    "benchmarks/gpu.py": {"--candidates": "2", "--batch-size": "2", "--steps": "2", "--size": "32", "--rounds": "1"},
    "benchmarks/strategies.py": {"--eval-tasks": "2", "--budgets": "4", "--repeats": "1", "--pool": "4",
                                 "--strategies": "best-of-n,tree-search"},
    "benchmarks/allocation.py": {"--pool": "8", "--replicates": "10"},
    "benchmarks/value_model.py": {"--eval-tasks": "2", "--budgets": "4", "--repeats": "1", "--pool": "4",
                                  "--warm-tasks": "1"},
    "benchmarks/tune_trajectories.py": {"--tasks": "3", "--repeats": "1", "--pool": "4", "--budgets": "4",
                                        "--only": "ts-3lvl"},
    "benchmarks/siblings.py": {"--tasks": "2", "--parents": "4"},
}
QUICK = {"benchmarks/dimension.py"}  # scripts whose own --quick smoke run stands for the documented one


def how(command: str) -> tuple[str, list[str], Path | None]:
    """(mode, argv, cwd) this test runs ``command`` with; mode is run, serve or make (see the comment above)."""
    words = shlex.split(command)
    words = [str(BIN / w.removeprefix(".venv/bin/")) if w.startswith(".venv/bin/") else w for w in words]
    if words[0] == "python":
        words[0] = sys.executable
    if words[0] == "make":
        return "run", ["make", "-n", *words[1:]], ROOT
    if words[:2] == ["pip", "install"]:
        return "run", [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
                       "--no-index", "-q", *words[2:]], ROOT
    script = next((w for w in words[1:2] if w.endswith(".py")), None)
    key = f"eacps {words[1]}" if Path(words[0]).name == "eacps" and len(words) > 1 else script
    if script == "docs/gen_reference.py":
        words.append("--check")
    elif script == "benchmarks/gpu.py" and "--model" in words:
        words.append("--help")
    elif key == "benchmarks/strategies.py" and "--markdown" in words:
        pass  # formats the small run above
    elif key == "benchmarks/tune_trajectories.py" and "--seeds" in words:
        words = _set(words, "--seeds", "0")  # the small runs above have one seed
    elif key == "eacps generate" and "--model" in words and "/" in words[words.index("--model") + 1]:
        words += [] if "--dry-run" in words else ["--dry-run"]
    elif key == "eacps serve":
        return "serve", _set(words, "--port", str(_free_port())), None
    for option, value in SMALL.get(key or "", {}).items():
        words = _set(words, option, value)
    if key in QUICK:
        words = [*words[:2], "--quick", *(["--out", words[words.index("--out") + 1]] if "--out" in words else [])]
    return "run", words, None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_clone(tmp: Path) -> Path:
    """A working directory like a fresh clone's root: examples copied (digits task sets cut to 12 tasks)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("docs", "notebooks", "benchmarks", "mkdocs.yml"):
        (tmp / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "examples", tmp / "examples")
    for path in (tmp / "examples").glob("digits*.toml"):
        path.write_text(re.sub(r"(?m)^n = \d+", "n = 12", path.read_text()))
    return tmp


def serve(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    port = argv[argv.index("--port") + 1]
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                return proc.returncode, proc.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    return (0 if r.status == 200 else 1), ""
            except OSError:
                time.sleep(0.2)
        return 1, "no answer on GET /"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_page(page: Path, tmp: Path) -> list[str]:
    """Run every command of ``page`` in order; the failures, each with the command as written and as run."""
    cwd = scratch_clone(tmp)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "120"}
    failures = []
    for command in shell_commands(page.read_text()):
        mode, argv, where = how(command)
        if mode == "serve":
            code, out = serve(argv, where or cwd, env)
        else:
            proc = subprocess.run(argv, cwd=where or cwd, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT_S)
            code, out = proc.returncode, proc.stdout + proc.stderr
        if code != 0:
            failures.append(f"{command}\n  ran: {shlex.join(argv)}\n  exit {code}: {out.strip()[-1500:]}")
    return failures


def test_the_pages_have_commands_and_every_one_is_planned():
    """Every page's commands are found, and each is run as written unless `how` says otherwise."""
    commands = {p.name: shell_commands(p.read_text()) for p in PAGES}
    readme = commands["README.md"]
    assert "eacps compare examples/digits-compare.toml --strategies tree-search,eacps,best-of-n --budgets 20,64 " \
           "--tune-tasks 10 --out runs/compare" in readme
    assert any(c.startswith("eacps generate 'a red fox in snow'") and "--judge-key-env VLLM_API_KEY" in c
               for c in readme), "continuation lines are joined"
    _, argv, _ = how("eacps generate x --model stabilityai/stable-diffusion-xl-base-1.0 --save-config s.toml")
    assert argv[-1] == "--dry-run"
    assert how("eacps generate 3 --model digits --budget 8")[1] == ["eacps", "generate", "3", "--model", "digits",
                                                                    "--budget", "8"]
    assert how("eacps compare c.toml --budgets 20,64")[1][3:5] == ["--budgets", "4"]
    assert how("make demo")[1] == ["make", "-n", "demo"]


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if shell_commands(p.read_text())], ids=lambda p: p.name)
def test_every_command_of_the_page_runs(page, tmp_path):
    failures = run_page(page, tmp_path)
    assert not failures, "\n\n".join(failures)


def test_a_failing_command_is_reported(tmp_path):
    """The runner can fail: a page whose command exits non-zero is reported with the command."""
    page = tmp_path / "page.md"
    page.write_text("```bash\neacps show runs/no-such-run\neacps plugins\n```\n")
    failures = run_page(page, tmp_path / "work")
    assert len(failures) == 1 and failures[0].startswith("eacps show runs/no-such-run") and "exit 2" in failures[0]
