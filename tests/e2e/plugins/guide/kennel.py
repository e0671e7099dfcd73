# The user guide, "Class Constructor Arguments", lines 1613-1625: a Dog with
# constructor arguments. The guide's bark(self) is called with an argument and
# its wag() has no self; here bark takes words and wag takes self, and both
# say what the constructor was given (the guide's return nothing), so that
# the caller's test can see it.
from gofer.decorators import remote

class Dog:

 def __init__(self, name, age=1):
   self.name = name
   self.age = age

 @remote
 def bark(self, words):
   return '%s (%d): %s' % (self.name, self.age, words)

 @remote
 def wag(self):
   return '%s (%d) wags' % (self.name, self.age)
