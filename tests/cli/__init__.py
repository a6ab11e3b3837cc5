"""Tests of the ufm command line, one file per command (tests/cli/test_<command>.py) next to the files of the
contracts every command keeps (test_errors, test_messages, test_blame, test_interrupt, test_estimates, test_cli).

A package, so that a command's file may share its name with the test file of the library module it calls
(tests/cli/test_simulate.py beside tests/test_simulate.py)."""
