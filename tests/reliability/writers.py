"""Other people at work on the same projects: visitors and teammates creating, renaming and
deleting their own conversations (some named like ours) while plan and apply run."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from reconciler.emulator import Emulator


@dataclass
class Writer:
    """One visitor or teammate: what they did and what of theirs must still be there."""

    creator: str  # "visitor" | "teammate"
    project_id: int
    names: list[str]  # names to use, ours among them
    seed: int
    alive: dict[str, str] = field(default_factory=dict)  # session id -> the name they gave
    actions: int = 0

    def step(self, emulator: Emulator, rng: random.Random) -> None:
        """Create, rename or delete one of their own conversations."""
        choice = rng.random()
        if choice < 0.5 or len(self.alive) < 2:
            name = rng.choice(self.names)
            conv = emulator.add_conversation(self.project_id, name, creator=self.creator)
            self.alive[str(conv["session_id"])] = name
        elif choice < 0.8:
            session = rng.choice(sorted(self.alive))
            name = f"{rng.choice(self.names)} ({self.creator} edit {self.actions})"
            emulator.store.rename_conversation(self.project_id, session, name)
            self.alive[session] = name
        else:
            session = rng.choice(sorted(self.alive))
            emulator.store.delete_conversation(self.project_id, session)
            del self.alive[session]
        self.actions += 1

    def missing_or_changed(self, emulator: Emulator) -> list[str]:
        """Their conversations that are gone or renamed by someone else."""
        live = {c["session_id"]: c["name"] for c in emulator.conversations(self.project_id)}
        return [f"{self.creator}'s {session} ({name!r}) is now {live.get(session)!r}"
                for session, name in self.alive.items() if live.get(session) != name]


class Crowd:
    """Writers acting in background threads until `stop()`."""

    def __init__(self, emulator: Emulator, writers: list[Writer], *, pause: float) -> None:
        self.emulator, self.writers, self.pause = emulator, writers, pause
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(w,), daemon=True)
                         for w in writers]
        self.errors: list[BaseException] = []

    def start(self) -> None:
        """Start every writer's thread."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the writers and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self, writer: Writer) -> None:
        rng = random.Random(writer.seed)
        try:
            while not self._stop.is_set():
                writer.step(self.emulator, rng)
                self._stop.wait(self.pause)
        except BaseException as error:  # reported by the test, not lost in a thread
            self.errors.append(error)
