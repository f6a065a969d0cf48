from django.urls import path

from notes import views

urlpatterns = [
    path("", views.index, name="index"),
    path("login/", views.login_view, name="login"),
    path("api/notify/<str:username>", views.notify, name="notify"),
    path("socket.io.min.js", views.client_js),
]
