"""``wxcallback fake-api``: the platforms' message APIs on this machine, to see what a bot sends.

Set a channel's ``api_base`` to the printed address; ``GET /_fake/received`` lists what was
sent (``?wait=N`` first waits for N sends), ``POST /_fake/down?seconds=60`` and
``POST /_fake/invalidate`` play an outage and a reset secret. For the third parties:
``POST /_fake/verify_ticket?component=APPID`` and ``/_fake/suite_ticket?suite=ID`` give the
ticket to push, ``/_fake/authorize?component=…&authorizer=…`` and
``/_fake/install?suite=…&corp=…&agentid=…`` the code of an authorization notice,
``/_fake/revoke`` and ``/_fake/cancel`` (same parameters) end one.
"""

from __future__ import annotations

import click

from .platform_api import FakePlatformAPI

__all__ = ["fake_api"]


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, secret = value.partition(":")
        if not sep or not name or not secret:
            raise click.BadParameter(f"{value.split(':')[0]}:…: expected ID:SECRET", param_hint=option)
        pairs[name] = secret
    return pairs


@click.command("fake-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9100, show_default=True, help="Port to listen on.")
@click.option("--app", "apps", multiple=True, metavar="APPID:SECRET",
              help="An Official Account / mini program whose token requests are answered (repeatable).")
@click.option("--corp", "corps", multiple=True, metavar="CORPID:SECRET",
              help="A WeCom corp and app Secret whose token requests are answered (repeatable).")
@click.option("--component", "components", multiple=True, metavar="APPID:SECRET",
              help="An open-platform component whose token requests are answered (repeatable).")
@click.option("--suite", "suites", multiple=True, metavar="SUITEID:SECRET",
              help="A WeCom suite whose token requests are answered (repeatable).")
@click.option("--token-ttl", type=click.IntRange(1, 86400), default=7200, show_default=True,
              help="expires_in of the tokens it gives, in seconds.")
def fake_api(host: str, port: int, apps: tuple[str, ...], corps: tuple[str, ...], components: tuple[str, ...],
             suites: tuple[str, ...], token_ttl: int) -> None:
    """Serve a fake of the platforms' token, message and response_url APIs."""
    fake = FakePlatformAPI(apps=_pairs(apps, "--app"), corps=_pairs(corps, "--corp"),
                           components=_pairs(components, "--component"), suites=_pairs(suites, "--suite"),
                           token_ttl=token_ttl, host=host, port=port)
    click.echo(f"fake platform API on {fake.api_base} (set api_base to it); GET /_fake/received lists the sends")
    fake._uvicorn().run()
