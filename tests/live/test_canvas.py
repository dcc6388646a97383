"""The reference canvas page in headless Chromium: drawn from the API, live, and draggable."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.browser import NO_BROWSER, find_browser, in_ci, open_page
from tests.live.conftest import NODE_POSITION, OWNER, LiveApi, token

BROWSER = find_browser()

CREATE_RELATIONSHIP = """
mutation($input: CreateRelationshipInput!) {
  createRelationship(input: $input) { __typename ... on UserError { message code } }
}"""

CREATE_CLUSTER = """
mutation($input: CreateClusterInput!) {
  createCluster(input: $input) { __typename ... on UserError { message code } }
}"""


async def test_the_page_and_its_scripts_are_served(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server) as client:
        page = await client.get("/canvas/00000000-0000-0000-0000-000000000001")
        assert page.status_code == 200 and "/canvas-assets/canvas.js" in page.text
        script = await client.get("/canvas-assets/canvas.js")
        assert script.status_code == 200 and "graphql-transport-ws" in script.text


@pytest.mark.skipif(BROWSER is None and not in_ci(), reason=NO_BROWSER)
async def test_the_canvas_draws_live_changes_and_sends_drags(
    live_server: str, owner: LiveApi
) -> None:
    assert BROWSER is not None, f"CI is set, so the browser test may not skip: {NO_BROWSER}"
    conversation = await owner.create_conversation("canvas under test")
    first = await owner.create_node(conversation, "first", canvasX=40, canvasY=60)
    second = await owner.create_node(conversation, "second", canvasX=500, canvasY=60)
    await owner.mutate(
        CREATE_RELATIONSHIP,
        input={"fromNodeId": first, "toNodeId": second, "relationshipType": "supports"},
    )
    await owner.mutate(
        CREATE_CLUSTER,
        input={"conversationId": conversation, "clusterName": "pair", "nodeIds": [first, second]},
    )
    headers = json.dumps({"Authorization": f"Bearer {token(OWNER)}"})
    async with open_page(BROWSER) as page:
        url = f"{live_server}/canvas/{conversation}"
        await page.send("Page.navigate", url=url)
        await page.wait_for("document.readyState === 'complete'")
        # The token as GraphiQL keeps it (its headers editor), then the page again.
        await page.evaluate(f"localStorage.setItem('graphiql:headers', {json.dumps(headers)})")
        await page.send("Page.navigate", url=url)
        await page.wait_for("document.body && document.body.dataset.ready === 'true'")
        await page.wait_for("document.getElementById('status').textContent === 'live'")
        assert await page.evaluate("document.querySelectorAll('[data-node-id]').length") == 2
        assert await page.evaluate("document.querySelector('.edge text').textContent") == (
            "supports"
        )
        assert await page.evaluate("document.querySelector('.cluster text').textContent") == "pair"
        assert await page.evaluate("document.getElementById('title').textContent") == (
            "canvas under test"
        )

        # A change made by another client is drawn within 2 s.
        await asyncio.sleep(0.5)
        started = time.monotonic()
        third = await owner.create_node(conversation, "drawn live", canvasX=40, canvasY=400)
        await page.wait_for(f"!!document.querySelector('[data-node-id=\"{third}\"]')", 2.0)
        assert time.monotonic() - started < 2.0

        # Drag the first node by (120, 80) with the mouse.
        box = await page.evaluate(
            f"""(() => {{
                const r = document.querySelector('[data-node-id="{first}"] rect')
                    .getBoundingClientRect();
                return {{x: r.x + 30, y: r.y + 30}};
            }})()"""
        )
        x, y = box["x"], box["y"]
        await page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        await page.send(
            "Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1
        )
        for step in range(1, 5):
            await page.send(
                "Input.dispatchMouseEvent",
                type="mouseMoved",
                x=x + 30 * step,
                y=y + 20 * step,
                button="left",
                buttons=1,
            )
        await page.send(
            "Input.dispatchMouseEvent",
            type="mouseReleased",
            x=x + 120,
            y=y + 80,
            button="left",
            clickCount=1,
        )
        # the page fits the graph to the window: a drag moves by the distance over the scale
        scale = float(await page.evaluate("document.getElementById('canvas').dataset.scale"))
        expected = (40 + round(120 / scale), 60 + round(80 / scale))
        deadline = time.monotonic() + 10
        while True:
            node = (await owner.gql(NODE_POSITION, id=first))["node"]
            if (node["canvasX"], node["canvasY"]) == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert (node["canvasX"], node["canvasY"]) == expected
        assert page.console_errors == []
