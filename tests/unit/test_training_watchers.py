"""Who follows a training now (`signaling.training_questions.Watchers`): the lecturer's list of
everybody attending counts a person once however many pages they have open, and forgets them
when their last page goes."""

from __future__ import annotations

from rooms.consults.people import Role, User
from signaling.training_questions import Watchers

TRAINING = "a" * 32
OTHER = "b" * 32


def trainee(user_id: int) -> User:
    return User(user_id, f"t{user_id}", f"Trainee {user_id}", Role.TRAINEE, 1)


def test_a_person_with_two_pages_attends_once_until_the_last_page_goes() -> None:
    watchers = Watchers()
    watchers.follow("page-1", TRAINING, trainee(7))
    watchers.follow("page-2", TRAINING, trainee(7))
    watchers.follow("page-2", TRAINING, trainee(7))  # training-watch again after a reconnect
    watchers.follow("page-3", OTHER, trainee(8))
    assert [u.id for u in watchers.attendees(TRAINING)] == [7]
    assert watchers.forget("page-1") == (7, {TRAINING})
    assert watchers.attending(TRAINING, 7)
    assert watchers.forget("page-2") == (7, {TRAINING})
    assert not watchers.attending(TRAINING, 7)
    assert watchers.attendees(TRAINING) == []
    assert [u.id for u in watchers.attendees(OTHER)] == [8]


def test_a_connection_that_never_followed_is_forgotten_quietly() -> None:
    watchers = Watchers()
    assert watchers.forget("nobody") == (None, set())
    assert watchers.attendees(TRAINING) == []
