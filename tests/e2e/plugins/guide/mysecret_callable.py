# The user guide, "Writing A Plugin" > "Security", lines 514-524: the secret
# given by a callable. Changed: getsecret()'s body is a placeholder ("...")
# with "return secret" indented less than it (an IndentationError); the
# placeholder is filled in with the secret of the guide's caller (line 500)
# and the return indented with it.
from gofer.decorators import  *

def getsecret():
   secret = 'mycathas9lives'
   return secret

class MyClass:

   @remote(secret=getsecret)
   def hello(self):
       return 'MyPlugin says, "hello".'
