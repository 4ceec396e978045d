"""linker-triage: a GitHub App that diagnoses linker and loader failures in issues."""
