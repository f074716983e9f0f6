"""PushUrl: a signed push address for an anchor's app, as createPushUrl returns it."""

from datetime import datetime

import strawberry


@strawberry.type(description="A signed push address for an anchor's app (admin only).")
class PushUrl:
    url: str = strawberry.field(
        description="rtmp://PUSH_DOMAIN/live/STREAM_ID?txSecret=…&txTime=…[&record=…]"
    )
    expires_at: datetime
    warnings: list[str] = strawberry.field(
        description="Things to know about the recording policy asked for."
    )
