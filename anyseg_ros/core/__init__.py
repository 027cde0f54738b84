"""The node's pure core: stdlib + numpy only (no rclpy, no torch), so it is tested without ROS
and reused offline (bag evaluation decodes and synchronises exactly as the robot does).

- topics.py    the node's topic names and modalities, and one normalised spelling for bags
- sync.py      ModalitySynchronizer, FrameSet, SyncEvent (anchor-based, dropout-tolerant)
- health.py    HealthMonitor: OFFLINE / ALIVE / STALE per sensor, injected clock, rates
- mailbox.py   Mailbox: single slot, drop-oldest, between callbacks and the inference worker
- decode.py    sensor_msgs fields <-> numpy (duck-typed), DecodeError(reason)
- settings.py  PARAMETERS (declared once) -> SyncSettings, InputSettings, Settings (frozen)
"""
