from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/profile/", views.profile, name="profile"),
    path("accounts/requests/", views.request_list, name="request_list"),
    path("accounts/requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("accounts/requests/<int:pk>/approve/", views.request_approve, name="request_approve"),
    path("accounts/requests/<int:pk>/reject/", views.request_reject, name="request_reject"),
    path("accounts/users/", views.user_list, name="user_list"),
    path("accounts/users/<int:pk>/", views.user_detail, name="user_detail"),
    path("accounts/users/<int:pk>/grant/", views.user_grant, name="user_grant"),
    path(
        "accounts/users/<int:pk>/roles/<int:membership_pk>/revoke/",
        views.user_revoke,
        name="user_revoke",
    ),
    path("accounts/users/<int:pk>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("accounts/users/<int:pk>/reactivate/", views.user_reactivate, name="user_reactivate"),
    path("studies/<str:nickname>/members/", views.study_members, name="study_members"),
    path(
        "studies/<str:nickname>/members/grant/",
        views.study_member_grant,
        name="study_member_grant",
    ),
    path(
        "studies/<str:nickname>/members/<int:membership_pk>/revoke/",
        views.study_member_revoke,
        name="study_member_revoke",
    ),
]
