"""`python -m trompa_mer.commands STEP ...`: the installed `trompa-mer` command without pip."""
from trompa_mer.commands import main

main()
