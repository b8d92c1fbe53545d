"""``v2gsim viz``: a live Mesa SolaraViz app that steps a scenario in the browser.

`v2gsim.viz.params` turns the app's knobs into scenario overrides (no browser needed),
`v2gsim.viz.live` holds the stepping model and reads its recorder into plot-ready tables,
`v2gsim.viz.components` draws them, `v2gsim.viz.app` is the Solara page and
`v2gsim.viz.server` starts it (``v2gsim viz [FILE]``).
"""
