"""A small client for the plugin's HTTP API, used by `status`, `drain` and `undrain`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from ..core.errors import AnnouncerError

__all__ = ["ApiClient", "ApiError", "ApiStarting"]


class ApiError(AnnouncerError):
    """The API could not be reached, or refused the request; the message says which."""

    def __init__(self, message: str, status: int | None = None, answer: Any = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal (None: not reached)
        self.answer = answer  # its JSON body, when it had one


class ApiStarting(ApiError):
    """The plugin has just started and made no decisions yet (its API answers 503)."""

    def __init__(self, message: str, progress: dict[str, Any]) -> None:
        super().__init__(message, 503, progress)
        self.progress = progress


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One call; a plugin still starting is asked again until its decisions are made
        (a second or two), within the timeout."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return self._request_once(method, path, body)
            except ApiStarting:
                if time.monotonic() + 0.1 >= deadline:
                    raise
                time.sleep(0.1)

    def _request_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("X-Announcer-Client", "cli")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read(64 * 1024).decode(errors="replace")
            try:
                answer = json.loads(detail)
            except ValueError:
                answer = None
            if exc.code == 503 and isinstance(answer, dict) and answer.get("starting"):
                raise ApiStarting("the plugin is starting", answer) from None
            raise ApiError(
                f"{method} {path}: HTTP {exc.code}: {detail}", exc.code, answer
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the announcer API at {self.base_url}: {reason}") from None

    def status(self) -> Any:
        return self._request("GET", "/v1/status")

    def fleet(self) -> Any:
        return self._request("GET", "/v1/fleet")

    def drain(self, vips: list[str], reason: str, persist: bool = True, force: bool = False) -> Any:
        body = {"vips": vips or None, "reason": reason, "persist": persist, "force": force}
        return self._request("POST", "/v1/drain", body)

    def wait_drained(self, vips: list[str], timeout_s: float) -> list[str]:
        """Until every VIP (all when none given) is withdrawn; return those that are not."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            pending = [
                v["prefix"]
                for v in status["vips"]
                if (not vips or v["prefix"] in vips)
                and not (v["desired"] == "withdraw" and v["acknowledged"] == "withdrawn")
            ]
            if not pending or time.monotonic() >= deadline:
                return list(pending)
            time.sleep(0.2)

    def slots(self) -> Any:
        return self._request("GET", "/v1/slots")

    def release_slots(self, slots: list[str], force: bool = False) -> Any:
        return self._request("POST", "/v1/slots/release", {"slots": slots, "force": force})

    def reload(self) -> Any:
        return self._request("POST", "/v1/reload", {})

    def undrain(self, vips: list[str]) -> Any:
        return self._request("POST", "/v1/undrain", {"vips": vips or None})
