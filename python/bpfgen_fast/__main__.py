from bpfgen_fast.cli import main

raise SystemExit(main())
