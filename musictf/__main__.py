from musictf.cli import main

raise SystemExit(main())
