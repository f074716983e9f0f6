// GraphiQL for replay-catalog, with example queries; every asset comes from /static.
"use strict";

const ROOMS_QUERY = `# The room list the app shows: live rooms first, then replays.
# Run it, then copy pageInfo.endCursor into "after" (Variables) for the next page.
query Rooms($first: Int = 4, $after: String) {
  rooms(first: $first, after: $after) {
    edges {
      cursor
      node {
        kind
        title
        coverUrl
        playbackUrl
        livePlayUrls { hls }
        anchor { userId nickname avatarUrl }
        broadcast { id startedAt endedAt durationSeconds }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`;

const ANCHOR_QUERY = `# An anchor's profile with their past broadcasts, newest first.
query AnchorProfile($userId: String! = "lily") {
  anchor(userId: $userId) {
    nickname
    avatarUrl
    isLive
    replayCount
    replayDurationSeconds
    replays(first: 5) {
      edges {
        node {
          id
          title
          startedAt
          durationSeconds
          playbackUrl
          recordings { fileId format videoUrl }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
`;

const fetcher = GraphiQL.createFetcher({ url: new URL("/graphql", window.location.href).href });

ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: ROOMS_QUERY,
    defaultTabs: [
      { query: ROOMS_QUERY, variables: '{\n  "first": 4,\n  "after": null\n}' },
      { query: ANCHOR_QUERY, variables: '{\n  "userId": "lily"\n}' },
    ],
    defaultEditorToolsVisibility: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  }),
);
