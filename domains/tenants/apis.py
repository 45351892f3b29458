"""HTTP endpoints for tokens. Views parse input and call services; nothing else."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains.tenants import schemas, services, throttles
from domains.tenants.auth import caller_of


class TokenObtainApi(throttles.ThrottledApiMixin, APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (throttles.LoginAddressThrottle, throttles.LoginUserThrottle)

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=512, trim_whitespace=False)
        tenant = serializers.SlugField(max_length=64, help_text="The tenant (academy) code.")

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()
        access_expires_at = serializers.DateTimeField()
        must_change_password = serializers.BooleanField(
            help_text="The user still has an initial password: until it is changed "
            "(POST /api/v1/auth/password/), other endpoints answer 403 "
            "password_change_required."
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **schemas.TOKEN_ERRORS},
        examples=[schemas.TOKENS_EXAMPLE],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = services.auth_token_issue(
            tenant_code=data.validated_data["tenant"],
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        return Response(self.OutputSerializer(tokens).data)


class TokenRefreshApi(throttles.ThrottledApiMixin, APIView):
    """A new token pair for a current refresh token (rotation: use the new refresh token)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (throttles.RefreshAddressThrottle, throttles.RefreshUserThrottle)

    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField(max_length=4096)

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField(
            help_text="A new refresh token; keep it instead of the one sent (rotation)."
        )
        access_expires_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **schemas.TOKEN_ERRORS},
        examples=[schemas.REFRESHED_EXAMPLE],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = services.auth_token_refresh(refresh=data.validated_data["refresh"])
        return Response(self.OutputSerializer(tokens).data)


class PasswordChangeApi(throttles.ThrottledApiMixin, APIView):
    """Change one's password; the only write open to a user who still has an initial one.

    Every refresh token issued before, in every tenant of the user, stops working (ADR 0014).
    """

    allowed_before_password_change = True
    throttle_classes = (throttles.PasswordAddressThrottle, throttles.PasswordUserThrottle)

    class InputSerializer(serializers.Serializer):
        current_password = serializers.CharField(max_length=512, trim_whitespace=False)
        new_password = serializers.CharField(max_length=512, trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: TokenObtainApi.OutputSerializer,
            **schemas.PASSWORD_CHANGE_ERRORS,
        },
        examples=[schemas.TOKENS_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = services.auth_password_change(
            caller_of(request),
            current_password=data.validated_data["current_password"],
            new_password=data.validated_data["new_password"],
        )
        return Response(TokenObtainApi.OutputSerializer(tokens).data)


class MeApi(APIView):
    """The caller as the access token states it. Answered without any database query."""

    allowed_before_password_change = True

    class OutputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()
        tenant_id = serializers.IntegerField()
        role = serializers.CharField()
        expires_at = serializers.IntegerField(help_text="Token expiry, epoch seconds.")
        must_change_password = serializers.BooleanField()

    @extend_schema(responses={200: OutputSerializer}, examples=[schemas.ME_EXAMPLE])
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(caller_of(request)).data)
