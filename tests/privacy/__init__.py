"""Privacy rules, proved: retention, deletion, logs, the notice, consent and audit views."""
