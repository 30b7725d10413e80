"""robo.runtime: running policies and learners across processes and machines.

- `chunk_executor.ChunkExecutor`: action chunks -> one action per control step (sync or async with
  latency compensation and cross-fades); used for local and remote policies alike.
- `policy_server.PolicyServer` / `remote_policy.RemotePolicy`: serve a policy to edge clients
  (`robo serve`), batched on the server.
- `learner.Learner` / `actor.Actor`: the learner and actor processes (`robo learner`, `robo actor`,
  `launch.launch_local` for `robo train --residual --actors N`): sockets, durability and pacing around
  the one RL loop of `robo.learn.spine` (this package imports no algorithm).
"""
