"""The person scenario of tessera-load, for Locust: the same steps, waits and checks,
so the two load generators can be compared on one stack (docs/benchmarks.md).

Run: TESSERA_STACK=<stack.json> locust -f loadtest/locust/person.py --headless -u 20 -r 20 -t 30s
"""

import html
import itertools
import json
import os
import re
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlparse

from locust import HttpUser, SequentialTaskSet, between, task

with open(os.environ["TESSERA_STACK"], encoding="utf-8") as stack_file:
    STACK = json.load(stack_file)
with open(STACK["password_file"], encoding="utf-8") as password_file:
    PASSWORD = password_file.read().rstrip("\r\n")
LOGIN = STACK["login_origin"]
FIRST, SECOND = STACK["sites"][0]["origin"], STACK["sites"][1]["origin"]
NUMBERS = itertools.count()
# Browsers treat http://localhost as a secure context and send it Secure (__Host-)
# cookies; Python's cookie policy does not, and requests merges each request's cookies
# into a fresh jar with the default policy, so the policy itself is taught.
_return_ok_secure = DefaultCookiePolicy.return_ok_secure


def _localhost_is_secure(policy, cookie, request):
    if urlparse(request.get_full_url()).hostname in ("localhost", "127.0.0.1"):
        return True
    return _return_ok_secure(policy, cookie, request)


DefaultCookiePolicy.return_ok_secure = _localhost_is_secure
HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
ACTION = re.compile(r'<form method="post" action="([^"]*)"')


def hidden_fields(body):
    return {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(body)}


class Person(SequentialTaskSet):
    def on_start(self):
        number = next(NUMBERS)
        self.client.headers["x-forwarded-for"] = f"10.200.{number // 256 % 256}.{number % 256}"
        self.account = STACK["accounts"][number % len(STACK["accounts"])]

    @task
    def site_page(self):
        self.client.get(f"{FIRST}/", name="site page")

    @task
    def sign_in(self):
        with self.client.get(
            f"{FIRST}/signin", name="site sign-in → login form", catch_response=True
        ) as form:
            flow = hidden_fields(form.text).get("flow")
            if flow is None:
                form.failure("no login form")
                return
        with self.client.post(
            f"{LOGIN}/login",
            data={"flow": flow, "username": self.account, "password": PASSWORD},
            headers={"origin": LOGIN},
            name="password → code → site /token → signed in",
            catch_response=True,
        ) as page:
            if "Signed in as" not in page.text:
                page.failure("sign-in did not end signed in")

    @task
    def sso_hop(self):
        with self.client.get(
            f"{SECOND}/signin", name="second site sign-in → signed in (SSO)", catch_response=True
        ) as page:
            if "Signed in as" not in page.text:
                page.failure("the SSO hop did not sign in")

    @task
    def sign_out(self):
        page = self.client.post(f"{FIRST}/signout", headers={"origin": FIRST}, name="site sign-out")
        action = ACTION.search(page.text)
        if action is None:
            return
        with self.client.post(
            html.unescape(action.group(1)),
            data=hidden_fields(page.text),
            headers={"origin": FIRST},
            name="login logout → site signed out",
            catch_response=True,
        ) as done:
            if "You are not signed in" not in done.text:
                done.failure("sign-out did not end signed out")


class PersonUser(HttpUser):
    host = FIRST
    tasks = [Person]
    wait_time = between(0.5, 1.5)
