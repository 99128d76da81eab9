"""`vci ui`: a server-rendered web app over the store and environments, calling the library the CLI calls.

``pages`` gathers what each page shows (board, timeline, runs, a release diff) from the same functions
as ``vci status``/``history``/``runs``; ``diff`` compares two releases; ``charts`` scrapes servers'
``/metrics`` and draws SVG; ``guard`` holds the token, CSRF, origin and CSP rules; ``actions`` runs
promote, rollback and abort; ``app`` wires them into a Flask application (imported only by ``vci ui``).
"""
