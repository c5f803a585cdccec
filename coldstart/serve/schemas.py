"""The JSON bodies of the HTTP API (pydantic models): what FastAPI validates requests against (a 422 naming the
field otherwise) and what /openapi.json describes. Item and user ids are strings (a JSON number is read as its
text); ratings are finite numbers on the model's scale."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_K = 1000  # items per list: a sign-up page shows tens
Id = Annotated[str, Field(min_length=1, max_length=500)]
Rating = Annotated[float, Field(allow_inf_nan=False, description="A finite number on the model's rating scale.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class Answer(_Body):
    """A rating, or "not seen" (an interview's answer: with the ranking objective it adapts as a dislike)."""
    item_id: Id = Field(description="An item id, or a title as `coldstart recommend --rate` accepts it.")
    rating: Rating | None = Field(None, description="The rating given; absent when `seen` is false.")
    seen: bool = Field(True, description="false: the person has not seen the item (no rating).")

    @model_validator(mode="after")
    def _rated_or_unseen(self) -> Answer:
        if self.seen == (self.rating is None):
            raise ValueError("give a rating, or \"seen\": false without one")
        return self


class RecommendRequest(_Body):
    ratings: list[Answer] | None = Field(None, description="A new user's ratings (may be empty).")
    user_id: Id | None = Field(None, description="Alone: a user of the training data, adapted on their history. "
                                                  "With `ratings`: the new user's id, which seeds their negatives "
                                                  "(\"new-user\" gives `coldstart recommend --rate`'s list).")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True

    @model_validator(mode="after")
    def _someone(self) -> RecommendRequest:
        if self.ratings is None and self.user_id is None:
            raise ValueError("give \"ratings\" (a new user) or \"user_id\" (a known user)")
        return self


class BatchUser(_Body):
    user_id: Id
    ratings: list[Answer]


class BatchRequest(_Body):
    users: list[BatchUser] = Field(min_length=1)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True


class InterviewRequest(_Body):
    answers: list[Answer] = Field(default_factory=list)
    n: int = Field(10, ge=1, le=MAX_K)


class Item(BaseModel):
    item_id: str
    label: str = Field(description="The item's title; empty when the model has none.")


class ScoredItem(Item):
    score: float


class Recommendations(BaseModel):
    items: list[ScoredItem]
    ignored: list[str] = Field(description="The items of the request that the model does not know (left out).")


class UserRecommendations(Recommendations):
    user_id: str


class BatchRecommendations(BaseModel):
    users: list[UserRecommendations]


class Questions(BaseModel):
    questions: list[Item]
    ignored: list[str]


class Items(BaseModel):
    items: list[Item]


class Health(BaseModel):
    status: str
    model: dict[str, Any]
