import asyncio

import yaml

from kubesteps.controller.operator import Connection, build_registry
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.pipeline.crd import crd
from kubesteps.testing import Emulator

PIPELINE = yaml.safe_load("""
apiVersion: kubesteps.dev/v1alpha1
kind: Pipeline
metadata: {name: demo, namespace: default}
spec:
  steps:
    - name: wait-a-bit
      action: delay
      with: {duration: 1s}
""")


async def test_my_pipeline_becomes_ready(k8s_emulator: Emulator, kubeconfig, operator_runner):
    k8s_emulator.register_crd(crd())
    registry = build_registry(Connection())  # credentials from KUBECONFIG (the fixture)
    credentials = Credentials(server=k8s_emulator.url, insecure=True)
    async with operator_runner(registry, wait_for=["pipelines"]), KubeClient(credentials) as api:
        await api.create(PIPELINE)
        async with asyncio.timeout(30):
            while True:
                body = await api.get("kubesteps.dev/v1alpha1", "Pipeline", "demo", "default")
                conditions = (body.get("status") or {}).get("conditions", [])
                ready = [c for c in conditions if c["type"] == "Ready"]
                if ready and ready[0]["status"] == "True":
                    break
                await asyncio.sleep(0.1)
