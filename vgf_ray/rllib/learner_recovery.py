"""A remote learner lost mid-run (its process or its node) is replaced before the next update round."""

from __future__ import annotations

import copy

import ray

from vgf_ray.rllib.compat import learner_group_module_spec


class LearnerRecovery:
    """Mixed into ``VGF``: reads its config, ``vgf_counters`` and learner group."""

    def _replace_lost_learners(self) -> None:
        """A remote learner that died (its process or its node) is replaced before any update is dispatched
        (survivors would otherwise wait for it in DDP's all-reduce): the learner group is rebuilt, every learner
        takes a survivor's state (weights, optimizers, online replay; all learners hold the same) and a fresh
        sampling RNG of its rank, and the offline dataset is sent again. No counter changes: updates done
        are kept. With no survivor the run stops, naming the way back (its last checkpoint)."""
        group = self.learner_group
        if not group.is_remote:
            return
        probes = list(group.foreach_learner(lambda learner: True, healthy_only=False))
        if all(p.ok for p in probes) and len(probes) == self.config.num_learners:
            return
        states = [r.get() for r in group.foreach_learner(lambda learner: learner.get_state()) if r.ok]
        lost = self.config.num_learners - len(states)
        if not states:
            raise RuntimeError(f"all {self.config.num_learners} remote learner(s) were lost; continue from the last "
                               "checkpoint with vgf-ray train ... --resume <checkpoint>")
        spec = learner_group_module_spec(group)  # the spec Algorithm.setup built the group with
        group.shutdown()
        self.learner_group = self.config.build_learner_group(rl_module_spec=spec)
        # Each learner takes a private copy: LearnerGroup.set_state hands every learner the same object-store
        # buffers (zero-copy), and Adam's in-place updates of shared moments then desynchronise the ranks.
        ref = ray.put(states[0])
        for result in self.learner_group.foreach_learner(
                lambda learner, r=ref: learner.set_state(copy.deepcopy(ray.get(r)))):
            if not result.ok:
                raise result.get()
        self.vgf_counters.learner_restarts += 1
        restarts = self.vgf_counters.learner_restarts
        self.learner_group.foreach_learner(lambda learner, k=restarts: learner.reseed(k))
        self._learners_have_data = False
        self._send_dataset_to_learners()
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
        print(f"vgf_ray: replaced {lost} lost learner(s) from a survivor's state (restart {restarts})", flush=True)
