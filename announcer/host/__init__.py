"""The host edge: BFD beside ExaBGP (FRR's bfdd: its configuration and its session state)
and the BGP session secrets read from files."""
