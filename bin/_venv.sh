# Sourced by bin/* scripts: makes .venv with requirements.txt installed, sets $PY.
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv and installing requirements.txt ..." >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
if [ ! -f .venv/.requirements-installed ] || [ requirements.txt -nt .venv/.requirements-installed ]; then
  .venv/bin/pip install --quiet -r requirements.txt
  touch .venv/.requirements-installed
fi
PY="$PWD/.venv/bin/python"
export PATH="$PWD/.venv/bin:$PATH"
