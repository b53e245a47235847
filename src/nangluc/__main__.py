from nangluc.cli import main

main()
