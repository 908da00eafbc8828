"""The review page: events live, each with its explanation, score curve and the patch grid of
where it happened (no pixels: the cloud never has them), and its JSON API under /api/."""

from vau.cloud.review.page import ReviewBindError, ReviewPage

__all__ = ["ReviewBindError", "ReviewPage"]
