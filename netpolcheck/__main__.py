from netpolcheck.cli import main

raise SystemExit(main())
