"""The ModelDeployment controller: serve ONNX models with rolling, blue-green or canary rollouts.

Layout, thin handler over pure modules (crate-operator style):

- ``sources``   -- model source resolution (trialRef, mlflowModel, uri), one class per kind
- ``builders``  -- Deployment / Service / HTTPRoute manifests (pure)
- ``revisions`` -- revision numbering, history entries, limits, rollbackTo (pure)
- ``canary``    -- replica split and HTTPRoute weights for a canary step (pure)
- ``analysis``  -- canary verdicts from the serving pods' ``/metrics`` text (pure)
- ``step``      -- the working state of one reconcile step (pure)
- ``accept``    -- start, replace, refuse or hold (approval) the desired model's revision (pure)
- ``approval``  -- decisions from ``approval.thunderbolt.io/<N>`` annotations (pure)
- ``gate``      -- ``spec.gate``: measuring a candidate, the gate Job's manifest (pure)
- ``sla``       -- ``spec.sla``: judging the serving revision's windows (pure)
- ``guards``    -- the I/O of gates (Jobs) and SLA windows (scrapes)
- ``rollout``   -- one reconcile step: status + observed children -> a plan (pure)
- ``promotion`` -- should an Experiment's best trial replace what is serving (pure)
- ``kube``      -- the few idempotent API calls that carry a plan out
- ``reconcile`` -- one tick: read, resolve, analyse, plan, write status, then children
- ``handlers``  -- Kopf timers that call ``reconcile``
- ``metrics``   -- rollout outcomes counted from the events a tick posts (Prometheus)
"""
