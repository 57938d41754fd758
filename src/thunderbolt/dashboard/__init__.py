"""A web dashboard for Experiments, Trials and ModelDeployments (`thunderbolt dashboard`).

- ``views``      -- objects -> what each page draws (pure; the CLI's own functions)
- ``importance`` -- parameter importance by Optuna's evaluators
- ``store``      -- one shared watch per kind feeding an in-memory copy and live pages
- ``kube``       -- Events, log tails, canary figures, and the opt-in write actions
- ``server``     -- aiohttp routes, page shells, server-sent events, the safety checks
- ``run``        -- start-up: credentials, the namespaces to watch, the server
- ``static/``    -- the hand-written front end (JS + SVG plots, CSS); nothing external
"""
