from provgit.cli import main

main()
