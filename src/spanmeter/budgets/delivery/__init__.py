"""Delivery of stored alerts: the outbox worker that retries until delivered
(:mod:`.outbox`), the channels, webhook, Slack and log (:mod:`.channels`), the signature of
webhook deliveries (:mod:`.signing`) and the JSON documents of alerts (:mod:`.documents`)."""

from __future__ import annotations

from .channels import DeliveryError, send
from .documents import alert_document
from .outbox import OutboxWorker
from .signing import sign, verify_signature

__all__ = ["DeliveryError", "OutboxWorker", "alert_document", "send", "sign", "verify_signature"]
