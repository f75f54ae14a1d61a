"""The scripts' settings: paths and hyperparameters, each overridable by an environment
variable. They live in the package (trompa_mer/commands/settings.py, read by the installed
`trompa-mer` command too); `import settings` beside the scripts gives that same module, so
`importlib.reload(settings)` re-reads the environment as before."""
import sys

from trompa_mer.commands import settings as _settings

sys.modules[__name__] = _settings
