from whisper_cli.commands.transcribe import main

main()
