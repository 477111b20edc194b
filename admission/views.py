"""``POST /admission/v1/shoots``: kube-apiserver's AdmissionReview of a Shoot, answered.

Thin: authenticate (401 for anybody but kube-apiserver's credentials), parse
(400 for a body that is no AdmissionReview), call :func:`.services.shoot_review`,
render. Every decision is an HTTP 200 AdmissionReview: a non-200 would make
kube-apiserver apply the webhook's ``failurePolicy`` instead of the portal's
answer; even an unexpected error is answered as a refusal (code 500), so a
Shoot never slips through without unique ranges (docs/admission.md).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .authentication import admission_caller
from .review import MalformedReview, review_parse, review_response

log = logging.getLogger(__name__)


@csrf_exempt  # a machine client with a bearer token or client certificate, never a browser session
@require_POST
def shoot_review(request: HttpRequest) -> JsonResponse:
    caller = admission_caller(request)
    if caller is None:
        return JsonResponse(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": 401,
                "reason": "Unauthorized",
            },
            status=401,
        )
    try:
        review = review_parse(request.body)
    except MalformedReview as exc:
        return JsonResponse(
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400, "message": str(exc)},
            status=400,
        )
    try:
        decision = services.shoot_review(review=review, caller=caller)
    except Exception:  # a bug: refuse with its code rather than let failurePolicy decide
        log.exception("admission of %s/%s failed", review.namespace, review.name)
        return JsonResponse(
            review_response(
                review.uid,
                allowed=False,
                code=500,
                reason="InternalError",
                message="internal error of the IPAM portal's admission webhook; see its log",
            )
        )
    return JsonResponse(
        review_response(
            review.uid,
            allowed=decision.allowed,
            patch=decision.patch,
            code=decision.code,
            message=decision.message,
            reason=decision.reason,
            warnings=decision.warnings,
            causes=decision.causes,
        )
    )
