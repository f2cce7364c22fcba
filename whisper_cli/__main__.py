from whisper_cli.commands import main

main()
