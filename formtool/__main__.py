from formtool.cli import main

main()
