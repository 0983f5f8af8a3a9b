from sweeper.cli import run

run()
