"""Kubernetes operator for ponder: CRDs ``ModelPool``, ``RoutingPolicy`` and
``ConsolidationPolicy`` reconciled into KubeRay RayServices, Services and the
router's ConfigMap. Reconcile logic lives in pure modules (``modelpool``,
``status``, ``routing``, ``demand``, ``leader``); ``handlers`` wires them to kopf."""
